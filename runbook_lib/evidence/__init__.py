"""Where facts come from: Prometheus (queries, the named panels, the signals the diagnosis
judges, the recording a record keeps), the host (psutil), the container (docker SDK) and the
logs. Each reader returns what it found or why it could not; none of them judges."""
