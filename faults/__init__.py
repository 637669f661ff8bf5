"""The fault harness: real skipline processes, real faults, a history of what clients were told,
and a checker that compares that history with what the store holds at the end.

Run one scenario or a tier with `python -m faults.run <scenario>|short|long`.
"""
