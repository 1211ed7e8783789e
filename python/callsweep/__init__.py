"""callsweep: sweep Sysmon logs for process access through direct system calls."""
