"""Deployment tooling: ``labctl`` (multi-node labs on one machine) and install scripts."""
