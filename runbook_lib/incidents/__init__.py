"""Incidents and their runs, as the index keeps them: which incident an alert joins and
which alert leads it, the run queue workers claim from, operator actions, past incidents,
the timeline and the post-mortem draft. `index.Index` is the one object callers hold."""
