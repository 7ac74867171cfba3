"""The data layer: engine, declarative base, models. SQL lives only in repositories."""
