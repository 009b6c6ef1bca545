"""Development and test tooling: the local Asterisk in a chroot (``pbx``), test calls
with sipp (``sipcall``) and prompt synthesis (``synth``).

Behind ``ivr pbx``, ``ivr call`` and ``ivr prompts build`` only: nothing on the serve path
imports this package (a test checks it), and it may run blocking subprocesses.
"""
