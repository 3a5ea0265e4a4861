"""sockdiff's tests: unit/ (pure), integration/ (the kernel, namespaces, subprocesses), helpers/."""
