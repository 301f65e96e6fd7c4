"""The embedded stack of `make up` and `make demo`: the dev server, emulators, ingress and worker as child
processes."""
