"""Reports written from the MLflow records alone: tables, statistics, plots and audits.

The pieces live in one module each: :mod:`.study` reads the records into tidy frames,
:mod:`.stats` holds the statistics, :mod:`.tables` the Markdown/LaTeX/CSV tables,
:mod:`.plots` the figures, :mod:`.audit` the best-practice checklist and :mod:`.write`
puts a report's folder together.
"""

from harness.report.run_summary import write_results

__all__ = ["write_results"]
