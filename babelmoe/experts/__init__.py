"""Experts: balanced k-means, the partition artifact, the MoE view."""
