"""``kubectl-lite completion bash|zsh``: a shell completion script, generated from the command line
parser itself (commands, subcommands, flags) and the scheme (resource types with their short
names), so it never falls out of date. Object names are completed by asking the server
(``kubectl-lite get TYPE -o name``) with the kubeconfig, context and namespace typed so far.

Use: ``source <(kubectl-lite completion bash)``; in zsh the same script runs through
``bashcompinit``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from apimachinery.scheme import Scheme, default_scheme

# Commands whose first argument is a resource type (and the next ones object names).
TYPED_COMMANDS = ("get", "describe", "delete", "edit", "label", "annotate", "patch", "scale", "wait", "explain")
# Commands that take an object as TYPE/NAME after a subcommand word.
SUBCOMMAND_TYPED = ("rollout",)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("completion", help="Print a shell completion script (bash or zsh)")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(offline=run)


@dataclass
class Words:
    """What the script completes, read from the parser."""

    commands: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)
    subcommands: dict[str, list[str]] = field(default_factory=dict)
    global_flags: list[str] = field(default_factory=list)
    valued_flags: set[str] = field(default_factory=set)


def _sub_action(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _options(parser: argparse.ArgumentParser, valued: set[str]) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        out.extend(action.option_strings)
        if action.option_strings and action.nargs != 0:
            valued.update(action.option_strings)
    return out


def collect(parser: argparse.ArgumentParser) -> Words:
    words = Words()
    words.global_flags = _options(parser, words.valued_flags)
    top = _sub_action(parser)
    if top is None:
        return words
    for name, sub in top.choices.items():
        words.commands.append(name)
        flags = _options(sub, words.valued_flags)
        nested = _sub_action(sub)
        subs: list[str] = []
        if nested is not None:
            subs = list(nested.choices)
            for child in nested.choices.values():
                flags += _options(child, words.valued_flags)
        else:
            first = next((a for a in sub._actions if not a.option_strings and a.choices), None)
            if first is not None and first.choices is not None:
                subs = [str(c) for c in first.choices]
        words.flags[name] = sorted(set(flags) - set(words.global_flags) - {"-h", "--help"})
        if subs:
            words.subcommands[name] = subs
    return words


def resource_words(scheme: Scheme) -> list[str]:
    out: set[str] = set()
    for rt in scheme:
        out.update({rt.plural, rt.singular, *rt.short_names})
        if rt.group:
            out.add(rt.group_resource)
    return sorted(w for w in out if w)


def _var(name: str) -> str:
    return name.replace("-", "_")


def bash_script(words: Words, resources: list[str], prog: str = "kubectl-lite") -> str:
    fn = "_" + _var(prog)
    lines = [
        f"# bash completion for {prog}; load it with: source <({prog} completion bash)",
        f'{fn}_commands="{" ".join(sorted(words.commands))}"',
        f'{fn}_global="{" ".join(sorted(words.global_flags))}"',
        f'{fn}_valued=" {" ".join(sorted(words.valued_flags))} "',
        f'{fn}_resources="{" ".join(resources)}"',
        f'{fn}_typed=" {" ".join(TYPED_COMMANDS)} "',
    ]
    for cmd in sorted(words.flags):
        lines.append(f'{fn}_flags_{_var(cmd)}="{" ".join(words.flags[cmd])}"')
    for cmd in sorted(words.subcommands):
        lines.append(f'{fn}_subs_{_var(cmd)}="{" ".join(words.subcommands[cmd])}"')
    lines.append(
        f"""
{fn}_names() {{
    # Object names of type $1, from the server, with the connection flags typed so far.
    local out
    out=$("{prog}" "${{{fn}_conn[@]}}" get "$1" -o name 2>/dev/null) || return
    echo "${{out//*\\//}}"
}}

{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local cmd="" sub="" i w
    local -a args=()
    {fn}_conn=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        if [[ "${fn}_valued" == *" $w "* ]]; then
            case "$w" in
                --kubeconfig|--context|-n|--namespace) {fn}_conn+=("$w" "${{COMP_WORDS[i+1]}}") ;;
            esac
            ((i++))
            continue
        fi
        case "$w" in
            --kubeconfig=*|--context=*|--namespace=*) {fn}_conn+=("$w") ;;
            -*) ;;
            *) if [[ -z "$cmd" ]]; then cmd="$w"; else args+=("$w"); fi ;;
        esac
    done
    if [[ "${fn}_valued" == *" $prev "* ]]; then
        COMPREPLY=()
        return
    fi
    if [[ -z "$cmd" ]]; then
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "${fn}_global" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "${fn}_commands" -- "$cur"))
        fi
        return
    fi
    local flags_var="{fn}_flags_${{cmd//-/_}}" subs_var="{fn}_subs_${{cmd//-/_}}"
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "${{!flags_var}} ${fn}_global" -- "$cur"))
        return
    fi
    if [[ -n "${{!subs_var}}" ]]; then
        if [[ ${{#args[@]}} -eq 0 ]]; then
            COMPREPLY=($(compgen -W "${{!subs_var}}" -- "$cur"))
            return
        fi
        sub="${{args[0]}}"
        args=("${{args[@]:1}}")
        if [[ "$cmd" == "config" && ${{#args[@]}} -eq 0 && "$sub" == *-context* ]]; then
            COMPREPLY=($(compgen -W "$("{prog}" "${{{fn}_conn[@]}}" config get-contexts -o name 2>/dev/null)" -- "$cur"))
            return
        fi
        [[ "$cmd" != "rollout" ]] && return
    fi
    if [[ "${fn}_typed" == *" $cmd "* || "$cmd" == "rollout" ]]; then
        if [[ ${{#args[@]}} -eq 0 ]]; then
            if [[ "$cur" == */* ]]; then
                local type="${{cur%%/*}}" n names=()
                for n in $({fn}_names "$type"); do names+=("$type/$n"); done
                COMPREPLY=($(compgen -W "${{names[*]}}" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "${fn}_resources" -- "$cur"))
            fi
        elif [[ "$cmd" != "explain" && "${{args[0]}}" != */* ]]; then
            COMPREPLY=($(compgen -W "$({fn}_names "${{args[0]}}")" -- "$cur"))
        fi
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}}

complete -o default -F {fn} {prog}
"""
    )
    return "\n".join(lines)


def zsh_script(words: Words, resources: list[str], prog: str = "kubectl-lite") -> str:
    """zsh runs the bash script through bashcompinit (zsh's emulation of bash's ``complete``)."""
    return (
        f"#compdef {prog}\n"
        f"# zsh completion for {prog}; load it with: source <({prog} completion zsh)\n"
        "autoload -U +X compinit && compinit\n"
        "autoload -U +X bashcompinit && bashcompinit\n"
        + bash_script(words, resources, prog)
    )


def run(args: argparse.Namespace) -> int:
    from kubectl_lite.main import build_parser  # main imports this module; the parser is built late

    words = collect(build_parser())
    resources = resource_words(default_scheme())
    script = bash_script(words, resources) if args.shell == "bash" else zsh_script(words, resources)
    sys.stdout.write(script)
    return 0
