"""The adapter folder, the unit of the guide's Phases 1 and 5: its metadata and lookup
(``meta``), a new folder in the guide's layout (``scaffold``), ``adapters/registry.yaml``
(``registry``), entries written from a folder (``register``) and the layout check
(``validate``)."""
