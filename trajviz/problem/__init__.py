"""What is trained: task families (and declared plugins), models used functionally, inner optimisers as (init, update) pairs, your own θ0 from a file."""
