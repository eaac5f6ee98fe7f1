"""The reconcile controllers; :mod:`controlplane.controllers.manager` runs them together."""
