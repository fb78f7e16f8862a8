"""Bridges: a signal's sends carried to other processes through a message broker.

Each bridge lives in its own subpackage and imports its broker client; ``import asignal``
imports none of them. :mod:`asignal.bridges.nats` is the NATS JetStream one.
"""
