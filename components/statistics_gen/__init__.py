"""StatisticsGen that computes a small dataset's statistics in this process, without Beam's shuffles (executor.py)."""
