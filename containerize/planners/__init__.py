"""Pure planners: each takes the Topology (and options) and fills planned fields or returns a plan."""
