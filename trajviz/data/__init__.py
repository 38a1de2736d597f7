"""The stored types as plain numpy + JSON (``Run``, ``Slice``, ``Surface``, ``BirthMap``, ...) and the numeric helpers over them. No torch."""
