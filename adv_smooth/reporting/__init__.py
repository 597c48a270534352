"""Pieces of `python -m adv_smooth.report`: finding jobs, grouping and tables, plots, and for publication
intervals, paired tests, LaTeX and the study's numbers side by side."""
