"""The heart of hexpost: entities, value objects, domain errors and ports. Depends on nothing else here."""
