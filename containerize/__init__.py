"""containerize: compile ns2/TopDL topologies into Ansible-deployable experiments."""

__version__ = "0.1.0"
