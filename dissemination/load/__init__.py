"""Load: read content files from git into validated models, with every problem located.

Readers (one per kind of file, like Pelican's) turn text into models; `project.load_project`
reads a whole content root and checks the references between files.
"""

from dissemination.load.project import Project, load_project

__all__ = ["Project", "load_project"]
