"""Ansible module ``sockdiff.sockdiff.sockdiff``: a host's listeners against its named baseline.

It runs on the managed host and calls sockdiff's library, as the command line
does (``sockdiff snapshot --name``, ``sockdiff compare BASELINE live --format
json``); nothing here decides what differs or how it is written.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: sockdiff
short_description: Snapshot a host's sockets, or compare them with a named baseline
description:
  - Runs sockdiff on the managed host (it must be installed for the Python that runs the module).
  - C(state=snapshot) keeps a named snapshot in the host's store; C(state=compare) compares a
    stored snapshot (or a snapshot file) with the live system and returns the differences as data.
  - Both set the fact C(sockdiff_listening), every listening socket with its namespace and owners.
options:
  state:
    description: C(snapshot) stores a baseline; C(compare) compares with one.
    type: str
    choices: [snapshot, compare]
    default: compare
  name:
    description: The name to store the snapshot under (C(state=snapshot)).
    type: str
  baseline:
    description:
      - A stored snapshot's name or a snapshot file (C(state=compare)); anything else fails
        (C(live) too: a host compared with itself says nothing).
    type: str
  fail_on:
    description:
      - Fail when any of these kinds differ (any, new, closed, changed, listening, interfaces,
        routes), as C(sockdiff compare --fail-on).
    type: list
    elements: str
  role:
    description: Compare what a role exposes, as C(sockdiff compare --role).
    type: bool
    default: false
  netns:
    description: Read this network namespace (a name under /run/netns, or a path).
    type: str
  all_netns:
    description: Read every network namespace of the host, as C(sockdiff --all-netns).
    type: bool
    default: false
  home:
    description: The snapshot store's directory (C($SOCKDIFF_HOME)); default the user's.
    type: path
  backend:
    description: netlink, proc or auto.
    type: str
    default: auto
attributes:
  check_mode:
    support: full
    details: A snapshot is taken but not stored; a comparison only reads.
notes:
  - C(state=snapshot) is C(changed) only when the snapshot differs from the one stored under
    that name (apart from the time it was taken, and interface counters); an unchanged
    baseline is left as it is.
"""

EXAMPLES = r"""
- name: Keep the baseline
  sockdiff.sockdiff.sockdiff:
    state: snapshot
    name: baseline

- name: New listeners since then fail the host
  sockdiff.sockdiff.sockdiff:
    state: compare
    baseline: baseline
    fail_on: [listening]
"""

RETURN = r"""
path:
  description: Where the snapshot is stored (C(state=snapshot), not in check mode).
  type: str
  returned: when stored, or left as it was
differences:
  description: The comparison as C(sockdiff compare --format json) writes it.
  type: dict
  returned: state=compare
counted:
  description: How many differences C(fail_on) counts (every difference when it is not given).
  type: int
  returned: state=compare
"""

import os  # noqa: E402  (Ansible modules open with their documentation)
import warnings  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


class _Module(AnsibleModule):  # type: ignore[misc]
    """sockdiff's warnings (owners hidden from a user who is not root, a backend fallen
    back), recorded in ``caught``, are the task's warnings (``warnings`` in its result),
    not text on the host's stderr."""

    caught: list[warnings.WarningMessage]

    def _pass_warnings(self) -> None:
        for warning in self.caught:
            self.warn(str(warning.message))
        self.caught.clear()

    def exit_json(self, **kwargs: Any) -> None:
        self._pass_warnings()
        super().exit_json(**kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> None:
        self._pass_warnings()
        super().fail_json(msg, **kwargs)


def main() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = _module()
        module.caught = caught
        _run(module)


def _module() -> _Module:
    return _Module(
        argument_spec={
            "state": {"type": "str", "choices": ["snapshot", "compare"], "default": "compare"},
            "name": {"type": "str"},
            "baseline": {"type": "str"},
            "fail_on": {"type": "list", "elements": "str"},
            "role": {"type": "bool", "default": False},
            "netns": {"type": "str"},
            "all_netns": {"type": "bool", "default": False},
            "home": {"type": "path"},
            "backend": {"type": "str", "default": "auto"},
        },
        required_if=[("state", "snapshot", ["name"]), ("state", "compare", ["baseline"])],
        mutually_exclusive=[("netns", "all_netns")],
        supports_check_mode=True,
    )


def _run(module: _Module) -> None:
    params = module.params
    if params["home"]:
        os.environ["SOCKDIFF_HOME"] = params["home"]
    try:
        import msgspec

        import sockdiff
        from sockdiff import store
        from sockdiff.differ import parse_fail_on, taken_again
        from sockdiff.formats.facts import listening_facts
        from sockdiff.formats.json import document
        from sockdiff.sources import LIVE
    except ImportError as err:
        module.fail_json(msg=f"sockdiff is not installed for this host's Python: {err}")
    result: dict[str, Any] = {}
    try:
        if params["state"] == "snapshot":
            store.check_name(params["name"])
            taken = sockdiff.snapshot(
                backend=params["backend"], netns=params["netns"], all_netns=params["all_netns"]
            )
            stored = store.load(params["name"])
            changed = stored is None or not taken_again(stored, taken)
            if changed and not module.check_mode:
                result["path"] = str(store.keep(taken, params["name"]))
            elif stored is not None and not changed:
                result["path"] = str(store.find(params["name"]))
            facts = listening_facts(taken)
            module.exit_json(changed=changed, ansible_facts={"sockdiff_listening": facts}, **result)
        baseline = params["baseline"]
        if baseline in LIVE or baseline == "-":
            module.fail_json(msg=f"baseline {baseline!r} is no baseline: name a stored snapshot or a file")
        if not (store.find(baseline) or os.path.isfile(baseline)):
            module.fail_json(
                msg=f"baseline {baseline!r}: no snapshot stored under that name, and no such file"
            )
        fail_on = parse_fail_on(",".join(params["fail_on"])) if params["fail_on"] else None
        live = f"live:{params['backend']}" if params["backend"] != "auto" else "live"
        compared = sockdiff.compare(
            baseline, live, netns=params["netns"], all_netns=params["all_netns"], role=params["role"]
        )
    except sockdiff.SockdiffError as err:
        module.fail_json(msg=str(err))
    differences = msgspec.to_builtins(document(compared))
    counted = compared.counted(fail_on or ("any",))
    facts = listening_facts(compared.new)
    outcome = {
        "changed": compared.counted(("any",)) > 0,
        "differences": differences,
        "counted": counted,
        "ansible_facts": {"sockdiff_listening": facts},
    }
    if fail_on is not None and counted:
        module.fail_json(msg=f"{counted} differences counted by fail_on ({', '.join(fail_on)})", **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
