r"""Sibling rules over the Sysmon event-10 fields: realistic variations of the direct-syscall rule
(different CallTrace, TargetImage and GrantedAccess tests), for multi-rule tests and benchmarks.

`sibling_rules(n)` gives the built-in rule at 311 and 316 first, then up to eight siblings, each
a full rule (TOML text, rule_id, metadata) as a user would write it.
"""

from __future__ import annotations

import uuid

from callsweep.rules.model import Rule, find_rule, parse_rule

_BASE = 'process where host.os.type == "windows" and event.code == "10" and '
# The first frames version 311 takes for the hooked API (ntdll, the WOW64 and win32u thunks).
_NTDLL = (
    r'"?:\\WINDOWS\\SYSTEM32\\ntdll.dll*", "?:\\WINDOWS\\SysWOW64\\ntdll.dll*", '
    r'"?:\\Windows\\System32\\wow64cpu.dll*", "?:\\WINDOWS\\System32\\wow64win.dll*", '
    r'"?:\\Windows\\System32\\win32u.dll*"'
)

_SIBLINGS: tuple[tuple[str, str], ...] = (
    (
        "LSASS Access with a Full Access Mask",
        r'winlog.event_data.TargetImage : "?:\\Windows\\system32\\lsass.exe" and '
        r'winlog.event_data.GrantedAccess in ("0x1fffff", "0x1010", "0x1410") and '
        f"not winlog.event_data.CallTrace : ({_NTDLL})",
    ),
    (
        "Process Access from Unbacked Memory Anywhere in the Stack",
        'stringContains~(winlog.event_data.CallTrace, "unknown(")',
    ),
    (
        "Process Access with an Unbacked First Frame",
        'winlog.event_data.CallTrace : "UNKNOWN(*"',
    ),
    (
        "Browser Opened through a Direct System Call",
        r'winlog.event_data.TargetImage : ("*\\chrome.exe", "*\\msedge.exe", "*\\firefox.exe") '
        f"and not winlog.event_data.CallTrace : ({_NTDLL})",
    ),
    (
        "Full Access with Unbacked Frames",
        'winlog.event_data.GrantedAccess == "0x1fffff" and '
        'winlog.event_data.CallTrace like "*UNKNOWN(*"',
    ),
    (
        "LSASS Opened from a User Folder",
        r'process.executable : "?:\\Users\\*" and '
        r'winlog.event_data.TargetImage : "*\\lsass.exe" and '
        f"not winlog.event_data.CallTrace : ({_NTDLL})",
    ),
    (
        "LSASS Opened not through ntdll",
        r'endsWith~(winlog.event_data.TargetImage, "\\lsass.exe") and '
        r'not startsWith~(winlog.event_data.CallTrace, "c:\\windows\\system32\\ntdll.dll")',
    ),
    (
        "Notepad Opened with a Call Trace",
        r'winlog.event_data.TargetImage in~ ("c:\\windows\\system32\\notepad.exe") and '
        "length(winlog.event_data.CallTrace) > 0 and "
        'not winlog.event_data.GrantedAccess in ("0x1000", "0x1400") and '
        f"not winlog.event_data.CallTrace : ({_NTDLL})",
    ),
)


def sibling_rule(name: str, condition: str) -> Rule:
    rule_id = uuid.uuid5(uuid.NAMESPACE_URL, f"callsweep:{name}")
    text = (
        f'[rule]\nrule_id = "{rule_id}"\nname = "{name}"\nversion = 1\n'
        f"severity = \"medium\"\nrisk_score = 47\nquery = '''\n{_BASE}{condition}\n'''\n"
    )
    return parse_rule(text, source=f"sibling:{name}")


def sibling_rules(n: int) -> list[Rule]:
    """`n` rules (at most 10): 2dd480be at 311 and 316, then the siblings."""
    rules = [find_rule("2dd480be@311"), find_rule("2dd480be@316")]
    rules += [sibling_rule(name, cond) for name, cond in _SIBLINGS]
    if not 1 <= n <= len(rules):
        raise ValueError(f"between 1 and {len(rules)} sibling rules, not {n}")
    return rules[:n]
