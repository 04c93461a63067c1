"""The HTML report of a run: sections in html.py, figures in figures.py."""
from tfx_tabular.pipeline.results.report.figures import PUSHED_MARK
from tfx_tabular.pipeline.results.report.html import REPORT_FILE, write_report

__all__ = ['PUSHED_MARK', 'REPORT_FILE', 'write_report']
