"""The report: a self-contained folder (``index.html``, ``assets/``, ``media/``) a director
reviews from disk or any static host: a contact sheet of every shot with its poster and
clip, prompt, seed, endpoint, cost, status, verdict and lineage, the takes side by side, the
stitched cut, and a comparison with another lock. No script, no network."""

from runner.report.page import ReportResult, write_report

__all__ = ["ReportResult", "write_report"]
