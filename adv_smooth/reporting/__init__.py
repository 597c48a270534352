"""Pieces of `python -m adv_smooth.report`: finding jobs, grouping and tables, plots."""
