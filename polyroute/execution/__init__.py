"""Execution: running a Decision's plan against upstreams."""
