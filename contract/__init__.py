"""The event contract: what a city event is on the wire, and the list of domains.

The bottom layer: it imports nothing else of the project, and every other package
(simulators, streams, recordings, api) reads events through it. ``envelope`` holds the
CloudEvents envelope and its decoding; ``rejection`` the reasons a record is refused;
``payload`` the payload base and number types; one module per domain its payload models
(msgspec structs: the served JSON Schemas are made from them); ``catalog`` the domains,
the event types and how an area reads each metric.
"""
