"""The pipelines as applications: settings, running an Application, user transforms."""
