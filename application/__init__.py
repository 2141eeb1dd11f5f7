"""Use cases: one class each, talking only to ports: the domain's storage ports and the application's
own (`application.ports`)."""
