"""Every fast path behind one dispatch: plain autograd is the reference every backend equals; the C kernels' sources and build cache; the thread policy."""
