"""Periods, metrics, Markdown (postmortem, report, tracker), the digests and their chart."""
