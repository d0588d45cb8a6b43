"""File snippets for Bash kernels (bash_kernel), built on GNU coreutils and findutils.

Strategy: bash_kernel feeds code to an interactive bash through a pseudo-terminal, line
by line, and can publish only images, HTML and JavaScript (a program writes the content
to a temp file and prints ``bash_kernel: saved html data to: <file>``). So the snippet
replies with an HTML display whose whole text is one data block,
``<script type="FILE_MIME_TYPE">{json}</script>`` (``replies.parse_reply`` accepts
it; a browser shows nothing), and every operation is exactly two lines:

1. a prologue that saves the shell's options (``set +o`` and ``$-``) and terminal mode, then turns
   off errexit, nounset, xtrace, noclobber, pipefail, history and line editing and puts
   the terminal in non-canonical mode: readline would take seconds per megabyte of
   chunk data, and a canonical terminal cuts lines at 4 KiB;
2. helper functions, the call, and the epilogue that deletes the functions and restores
   the terminal and the options, on one line, so bash reads it without readline.

Invariants: the code is printable ASCII (every path is a ``$'...'`` word with ``\\xHH``
escapes, so no byte reaches the terminal as a control character); external programs
run through ``command`` (no alias or function can stand in) with ``LC_ALL=C``; the reply
JSON holds only ASCII without ``<``: labels are JSON-escaped client-side, names outside
a plain character set travel as ``name_base64``, OS messages are reduced to a safe set.
Confinement, atomic commit and checksums follow the Python snippet (``files``): the
same checks, the same error kinds, the same temp-file name (computed client-side).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .snippets import (
    FILE_MIME_TYPE,
    FileOperation,
    FileSnippets,
    json_string_body,
    temp_file_name,
)

__all__ = ["BashFileSnippets"]

_PREFIX = "__jupyter_interp"
_FUNCTIONS = (
    "file_op",
    "locate",
    "inside",
    "oserror",
    "regular",
    "real",
    *(f"op_{operation.value}" for operation in FileOperation),
)
_SAFE_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+,=@%/:-")

# One complete function definition per line; joined with "; " they make the single line
# that bash reads without readline.
_DEFINITIONS = r"""
__jupyter_interp_real() { local p; p=$(command realpath -m -- "$1" && builtin printf .) || return 1; REPLY=${p%$'\n.'}; }
__jupyter_interp_inside() { [[ $base == / || $1 == "$base" || $1 == "$base/"* ]]; }
__jupyter_interp_oserror() { text=${1##*: }; case $text in 'File exists') err=not_a_directory; text='Not a directory';; 'No such file or directory') err=not_found;; 'Not a directory') err=not_a_directory;; 'Is a directory') err=is_directory;; *) err=os_error;; esac; msg="$label: ${text//[^[:alnum:] ,.:;()_-]/?}"; return 1; }
__jupyter_interp_locate() { __jupyter_interp_real "${root:-.}" || { err=os_error; msg='the file root cannot be resolved'; return 1; }; base=$REPLY; if [[ -z $rel ]]; then parent=$base; target=$base; else if [[ $rel == */* ]]; then __jupyter_interp_real "$base/${rel%/*}"; else __jupyter_interp_real "$base"; fi; parent=$REPLY; target=${parent%/}/${rel##*/}; fi; if ! __jupyter_interp_inside "$parent"; then err=not_confined; msg="$label resolves outside the file root"; return 1; fi; if [[ $1 == 1 ]]; then __jupyter_interp_real "$target"; if ! __jupyter_interp_inside "$REPLY"; then err=not_confined; msg="$label resolves outside the file root"; return 1; fi; fi; }
__jupyter_interp_regular() { if ! text=$(command stat -L -c '%F/%s/%.9Y' -- "$target" 2>&1); then __jupyter_interp_oserror "$text"; return 1; fi; kind=${text%%/*}; text=${text#*/}; size=${text%%/*}; mtime=${text#*/}; mtime=${mtime/./}; if [[ $mtime == -* ]]; then mtime=$((-10#${mtime#-})); else mtime=$((10#$mtime)); fi; case $kind in directory) err=is_directory; msg="$label is a directory"; return 1;; regular*) return 0;; *) err=not_a_file; msg="$label is not a regular file"; return 1;; esac; }
__jupyter_interp_op_upload_chunk() { __jupyter_interp_locate 1 || return 1; if ! text=$(command mkdir -p -- "$parent" 2>&1); then __jupyter_interp_oserror "$text"; return 1; fi; if [[ $1 != 0 && ! -e $parent/$temp ]]; then err=incomplete; msg="chunk $1 for $label came without chunk 0"; return 1; fi; if [[ $1 == 0 ]]; then text=$( { builtin printf %s "$2" | command base64 -d > "$parent/$temp"; } 2>&1 ); else text=$( { builtin printf %s "$2" | command base64 -d >> "$parent/$temp"; } 2>&1 ); fi || { __jupyter_interp_oserror "$text"; return 1; }; out="\"size\":$(command stat -c %s -- "$parent/$temp")"; }
__jupyter_interp_op_upload_commit() { local part; __jupyter_interp_locate 1 || return 1; if ! text=$(command mkdir -p -- "$parent" 2>&1); then __jupyter_interp_oserror "$text"; return 1; fi; part=$parent/$temp; if [[ ! -e $part ]]; then if [[ $1 != 0 ]]; then err=incomplete; msg="no chunk of the upload to $label arrived"; return 1; fi; if ! text=$( { : > "$part"; } 2>&1 ); then __jupyter_interp_oserror "$text"; return 1; fi; fi; size=$(command stat -c %s -- "$part"); sum=$(command sha256sum < "$part"); sum=${sum%% *}; if [[ $size != "$1" || $sum != "$2" ]]; then command rm -f -- "$part"; err=checksum_mismatch; msg="the kernel received $size bytes with sha256 $sum for $label, expected $1 bytes with sha256 $2"; return 1; fi; if [[ -d $target && ! -L $target ]]; then command rm -f -- "$part"; err=is_directory; msg="$label: Is a directory"; return 1; fi; if ! text=$(command mv -f -T -- "$part" "$target" 2>&1); then command rm -f -- "$part"; __jupyter_interp_oserror "$text"; return 1; fi; out="\"size\":$size,\"sha256\":\"$sum\""; }
__jupyter_interp_op_upload_abort() { __jupyter_interp_locate 1 || return 1; if [[ -e $parent/$temp || -L $parent/$temp ]] && command rm -f -- "$parent/$temp" 2> /dev/null; then out='"removed":true'; else out='"removed":false'; fi; }
__jupyter_interp_op_stat() { __jupyter_interp_locate 1 || return 1; if ! __jupyter_interp_regular; then if [[ $1 == 1 && $err == is_directory ]]; then err=''; msg=''; out="\"kind\":\"directory\",\"size\":0,\"sha256\":\"\",\"mtime_ns\":$mtime"; return 0; fi; return 1; fi; if ! sum=$( { command sha256sum < "$target"; } 2>&1 ); then __jupyter_interp_oserror "$sum"; return 1; fi; out="\"size\":$size,\"sha256\":\"${sum%% *}\",\"mtime_ns\":$mtime"; }
__jupyter_interp_op_read_chunk() { local chunk; __jupyter_interp_locate 1 && __jupyter_interp_regular || return 1; chunk=$(command mktemp "${TMPDIR:-/tmp}/jupyter-interp.XXXXXXXXXX") || { err=os_error; msg='cannot create a temporary file'; return 1; }; if ! text=$( { command tail -c "+$(($1 + 1))" < "$target" | command head -c "$2" > "$chunk"; } 2>&1 ); then command rm -f -- "$chunk"; __jupyter_interp_oserror "$text"; return 1; fi; sum=$(command sha256sum < "$chunk"); out="\"offset\":$1,\"data\":\"$(command base64 -w 0 < "$chunk")\",\"sha256\":\"${sum%% *}\",\"size\":$size,\"mtime_ns\":$mtime"; command rm -f -- "$chunk"; }
__jupyter_interp_op_list_dir() { local record name entries='' sep=''; __jupyter_interp_locate 1 || return 1; if [[ -z $rel && ! -e $target ]]; then out='"entries":[]'; return 0; fi; if ! text=$(command stat -L -c %F -- "$target" 2>&1); then __jupyter_interp_oserror "$text"; return 1; fi; if [[ $text != directory ]]; then err=not_a_directory; msg="$label: Not a directory"; return 1; fi; while IFS= read -r -d '' record; do kind=${record%%/*}; record=${record#*/}; size=${record%%/*}; name=${record#*/}; case $kind in f) kind="\"file\",\"size\":$size";; d) kind='"directory"';; l) kind='"symlink"';; *) kind='"other"';; esac; if [[ $name == *[^[:alnum:]\ ._+,=@%-]* ]]; then name="\"name_base64\":\"$(builtin printf %s "$name" | command base64 -w 0)\""; else name="\"name\":\"$name\""; fi; entries+="$sep{$name,\"kind\":$kind}"; sep=,; done < <(command find "$target/" -mindepth 1 -maxdepth 1 -printf '%y/%s/%P\0' 2> /dev/null); out="\"entries\":[$entries]"; }
__jupyter_interp_op_delete() { __jupyter_interp_locate 0 || return 1; if ! text=$(command stat -c %F -- "$target" 2>&1); then __jupyter_interp_oserror "$text"; return 1; fi; case $text in directory) if [[ $1 != 1 ]]; then err=is_directory; msg="$label is a directory; delete it recursively"; return 1; fi; kind=directory;; 'symbolic link') kind=symlink;; regular*) kind=file;; *) kind=other;; esac; if [[ $kind == directory ]]; then text=$(command rm -rf -- "$target" 2>&1); else text=$(command rm -f -- "$target" 2>&1); fi || { __jupyter_interp_oserror "$text"; return 1; }; out="\"kind\":\"$kind\""; }
__jupyter_interp_file_op() { local -x LC_ALL=C; local IFS=$' \t\n' mime=$1 op=$2 root=$3 label=$4 rel=$5 temp=$6 err='' msg='' out='' reply base parent target text kind size mtime sum REPLY; shift 6; reply=$(command mktemp "${TMPDIR:-/tmp}/bash_kernel.XXXXXXXXXX") || return 1; if "__jupyter_interp_op_$op" "$@"; then text="{\"ok\":true,$out}"; else text="{\"ok\":false,\"error\":\"${err:-os_error}\",\"message\":\"${msg:-$label: the $op operation failed}\"}"; fi; builtin printf '<script type="%s">%s</script>' "$mime" "$text" > "$reply"; builtin printf 'bash_kernel: saved html data to: %s\n' "$reply"; }
"""  # noqa: E501
_ONE_LINE = "; ".join(_DEFINITIONS.strip().splitlines())

_PROLOGUE = (
    # 'set +o' in a command substitution always reports errexit off: note it from $-.
    f"{_PREFIX}_options=$(set +o); [[ $- != *e* ]] || {_PREFIX}_options+=$'\\nset -e'; "
    "set +euvxC +o pipefail +o history +o emacs +o vi; "
    f"{_PREFIX}_tty=$(command stty -g 2> /dev/null); "
    f"[[ -z ${_PREFIX}_tty ]] || command stty -icanon 2> /dev/null"
)
_EPILOGUE = (
    f"unset -f {' '.join(f'{_PREFIX}_{name}' for name in _FUNCTIONS)}; "
    f'[[ -z ${_PREFIX}_tty ]] || command stty "${_PREFIX}_tty" 2> /dev/null; '
    # Line editing must come back on in a plain top-level command: bash switched on
    # inside 'eval' (or any compound command) prompts for a continuation line.
    f'set -o emacs; eval "${_PREFIX}_options"; unset -v {_PREFIX}_options {_PREFIX}_tty'
)


def _word(text: str) -> str:
    """``text`` as one bash word of printable ASCII (``$'...'`` with ``\\xHH`` escapes)."""
    if text and all(char in _SAFE_WORD for char in text):
        return f"'{text}'"
    escaped = "".join(
        chr(byte) if chr(byte) in _SAFE_WORD else f"\\x{byte:02x}" for byte in text.encode()
    )
    return f"$'{escaped}'"


def _operation_arguments(
    operation: FileOperation, arguments: Mapping[str, str | int | bool]
) -> list[str]:
    if operation is FileOperation.UPLOAD_CHUNK:
        return [str(arguments["index"]), f"'{arguments['data']}'"]
    if operation is FileOperation.UPLOAD_COMMIT:
        return [str(arguments["size"]), str(arguments["sha256"])]
    if operation is FileOperation.READ_CHUNK:
        return [str(arguments["offset"]), str(arguments["length"])]
    if operation is FileOperation.DELETE:
        return ["1" if arguments["recursive"] else "0"]
    if operation is FileOperation.STAT and arguments.get("directories"):
        return ["1"]
    return []


@attrs.frozen(kw_only=True)
class BashFileSnippets(FileSnippets):
    """Snippets for bash_kernel; the kernel's machine needs GNU coreutils and findutils."""

    def render(self, operation: FileOperation, arguments: Mapping[str, str | int | bool]) -> str:
        path = str(arguments["path"])
        label = repr(path) if path else "the file root"
        transfer_id = arguments.get("transfer_id")
        temp = temp_file_name(path, str(transfer_id)) if transfer_id is not None else ""
        words = [
            f"{_PREFIX}_file_op",
            _word(FILE_MIME_TYPE),
            operation.value,
            _word(self.root),
            _word(json_string_body(label)),
            _word(path),
            _word(temp),
            *_operation_arguments(operation, arguments),
        ]
        return f"{_PROLOGUE}\n{_ONE_LINE}; {' '.join(words)}; {_EPILOGUE}\n"
