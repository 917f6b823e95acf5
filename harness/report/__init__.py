"""Reports written from the MLflow records alone: tables, statistics, plots and audits.

The pieces live in one module each: :mod:`.study` reads the records into tidy frames,
:mod:`.stats` holds the statistics, :mod:`.tables` the Markdown/LaTeX/CSV tables,
:mod:`.anytime` the incumbent curves, :mod:`.plots` the figures, :mod:`.audit` the
best-practice checklist, :mod:`.fidelity` the comparison of two tables, and
:mod:`.write` puts a report's folder together. Importing this package stays cheap.
"""

#: a report folder's main file
REPORT = "report.md"
#: the main table of a report folder (what ``harness run`` prints)
TABLE = "table.md"
