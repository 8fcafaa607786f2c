"""Runs and what they leave: executing a notebook in a kernel of its own (runner, engine,
kernels, zygote), the record directory it is filed as, the index of incidents and runs (also
the durable run queue), post-mortem drafts and retention."""
