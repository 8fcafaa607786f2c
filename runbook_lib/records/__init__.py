"""An incident record as files: the directory a run is filed as (`record.ipynb`, its HTML,
`report.html`, `summary.json`), its name, the report view and the answer-first lead."""
