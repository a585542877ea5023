"""Task readers and runners: X-CSQA, MGSM, and the project's own UDHR-Cont."""
