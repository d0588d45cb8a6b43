"""File snippets for R kernels (IRkernel), built on base R, jsonlite, digest and IRdisplay.

Strategy: the snippet is one ``local({...})`` block, so it leaves no name in the user's
workspace and its value is invisible (IRkernel shows no result). It publishes its reply
with ``IRdisplay::publish_mimebundle`` under ``FILE_MIME_TYPE``; because IRkernel
serialises display data with ``jsonlite::toJSON(digits = 4)``, which would round large
integers, the value is the reply's JSON *text*, written by the snippet's own small
encoder (``replies.parse_reply`` accepts text there). jsonlite and digest are
IRkernel's own dependencies; file types, sizes and nanosecond mtimes come from GNU
``stat``, directory creation and deletion from ``mkdir``/``rm`` and listings from GNU
``find`` (so their error texts and kinds match the Bash snippet's).

Invariants: every string from the caller travels base64-encoded and is decoded into raw
bytes in R (no R string-literal or encoding rules apply); confinement resolves symlinks
component by component like ``os.path.realpath``; uploads are committed with
``file.rename`` after size and sha256 checks; the reply JSON is ASCII without ``<``
(names outside a plain set travel as ``name_base64``, OS messages are reduced to a safe
set), exactly as for the other languages.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import attrs

from .snippets import (
    FILE_MIME_TYPE,
    FileOperation,
    FileSnippets,
    json_string_body,
    temp_file_name,
)

__all__ = ["RFileSnippets"]

_BODY = r"""
  text <- function(encoded) rawToChar(jsonlite::base64_dec(encoded))
  b64 <- function(bytes) gsub("\n", "", jsonlite::base64_enc(bytes), fixed = TRUE)
  refuse <- function(kind, message) stop(structure(class = c("jupyter_interp_refusal", "error", "condition"), list(message = message, call = NULL, kind = kind)))
  number <- function(value) structure(if (is.character(value)) value else sprintf("%.0f", value), class = "jupyter_interp_number")
  fail <- function(message) {
    reason <- if (grepl("reason '", message, fixed = TRUE, useBytes = TRUE)) sub(".*reason '(.*)'.*", "\\1", message, useBytes = TRUE) else sub(".*: ", "", message, useBytes = TRUE)
    if (reason == "File exists") reason <- "Not a directory"  # dir.create under a file
    kind <- switch(reason, "No such file or directory" = "not_found", "Not a directory" = "not_a_directory", "Is a directory" = "is_directory", "os_error")
    refuse(kind, paste0(label, ": ", gsub("[^[:alnum:] ,.:;()_-]", "?", reason, useBytes = TRUE)))
  }
  attempt <- function(expr) {
    problems <- character()
    value <- withCallingHandlers(
      tryCatch(expr, error = function(e) { problems <<- c(problems, conditionMessage(e)); NULL }),
      warning = function(w) { problems <<- c(problems, conditionMessage(w)); invokeRestart("muffleWarning") })
    if (length(problems)) fail(problems[1])
    value
  }
  run <- function(command, arguments) {
    out <- suppressWarnings(system2(command, shQuote(arguments), stdout = TRUE, stderr = TRUE, env = "LC_ALL=C"))
    if (!is.null(attr(out, "status"))) fail(paste(out, collapse = " "))
    out
  }
  describe <- function(path, format, follow = TRUE) strsplit(run("stat", c(if (follow) "-L", "-c", format, "--", path))[1], "/", fixed = TRUE)[[1]]
  is_link <- function(path) { link <- Sys.readlink(path); !is.na(link) && nzchar(link) }
  real <- function(path) {
    todo <- strsplit(path, "/", fixed = TRUE)[[1]]
    done <- ""
    hops <- 0
    while (length(todo)) {
      part <- todo[1]
      todo <- todo[-1]
      if (part == "" || part == ".") next
      if (part == "..") { done <- sub("/[^/]*$", "", done); next }
      here <- paste0(done, "/", part)
      link <- Sys.readlink(here)
      if (!is.na(link) && nzchar(link) && hops < 40) {
        hops <- hops + 1
        if (startsWith(link, "/")) done <- ""
        todo <- c(strsplit(link, "/", fixed = TRUE)[[1]], todo)
      } else done <- here
    }
    if (nzchar(done)) done else "/"
  }
  locate <- function(follow = TRUE) {
    base <- real(if (!nzchar(root)) getwd() else if (startsWith(root, "/")) root else file.path(getwd(), root))
    inside <- function(path) base == "/" || path == base || startsWith(path, paste0(base, "/"))
    parts <- if (nzchar(rel)) strsplit(rel, "/", fixed = TRUE)[[1]] else character()
    parent <- real(paste(c(base, parts[-length(parts)]), collapse = "/"))
    target <- if (length(parts)) paste0(sub("/$", "", parent), "/", parts[length(parts)]) else parent
    if (!inside(parent) || (follow && !inside(real(target)))) refuse("not_confined", paste(label, "resolves outside the file root"))
    list(parent = parent, target = target, part = paste0(sub("/$", "", parent), "/", temp))
  }
  nanoseconds <- function(seconds) number(sub("^(-?)0*([0-9])", "\\1\\2", sub(".", "", seconds, fixed = TRUE)))
  regular <- function(path) {
    info <- describe(path, "%F/%s/%.9Y")
    if (info[1] == "directory") refuse("is_directory", paste(label, "is a directory"))
    if (!startsWith(info[1], "regular")) refuse("not_a_file", paste(label, "is not a regular file"))
    list(size = number(info[2]), mtime_ns = nanoseconds(info[3]))
  }
  json <- function(value) {
    if (inherits(value, "jupyter_interp_number")) return(unclass(value))
    if (is.logical(value)) return(if (value) "true" else "false")
    if (is.character(value)) return(paste0("\"", value, "\""))
    parts <- vapply(value, json, "")
    if (is.null(names(value))) paste0("[", paste(parts, collapse = ","), "]")
    else paste0("{", paste0("\"", names(value), "\":", parts, collapse = ","), "}")
  }
  plain <- charToRaw("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._+,=@%-")
  entry <- function(record) {
    slashes <- which(record == charToRaw("/"))[1:2]
    name <- record[(slashes[2] + 1):length(record)]
    named <- if (all(name %in% plain)) list(name = rawToChar(name)) else list(name_base64 = b64(name))
    c(named, switch(rawToChar(record[1]),
      f = list(kind = "file", size = number(rawToChar(record[(slashes[1] + 1):(slashes[2] - 1)]))),
      d = list(kind = "directory"), l = list(kind = "symlink"), list(kind = "other")))
  }
  operations <- list(
    upload_chunk = function() {
      where <- locate()
      run("mkdir", c("-p", "--", where$parent))
      if (args$index > 0 && !file.exists(where$part)) refuse("incomplete", paste("chunk", args$index, "for", label, "came without chunk 0"))
      con <- attempt(file(where$part, if (args$index > 0) "ab" else "wb"))
      tryCatch(writeBin(jsonlite::base64_dec(args$data), con), finally = close(con))
      list(size = number(file.size(where$part)))
    },
    upload_commit = function() {
      where <- locate()
      run("mkdir", c("-p", "--", where$parent))
      if (!file.exists(where$part)) {
        if (args$size > 0) refuse("incomplete", paste("no chunk of the upload to", label, "arrived"))
        attempt(file.create(where$part))
      }
      size <- file.size(where$part)
      sum <- digest::digest(file = where$part, algo = "sha256")
      if (size != args$size || sum != args$sha256) {
        unlink(where$part)
        refuse("checksum_mismatch", sprintf("the kernel received %.0f bytes with sha256 %s for %s, expected %.0f bytes with sha256 %s", size, sum, label, args$size, args$sha256))
      }
      if (dir.exists(where$target) && !is_link(where$target)) { unlink(where$part); refuse("is_directory", paste0(label, ": Is a directory")) }
      tryCatch(attempt(file.rename(where$part, where$target)), error = function(e) { unlink(where$part); stop(e) })
      list(size = number(size), sha256 = sum)
    },
    upload_abort = function() {
      where <- locate()
      list(removed = (file.exists(where$part) || is_link(where$part)) && suppressWarnings(file.remove(where$part)))
    },
    stat = function() {
      where <- locate()
      if (isTRUE(args$directories)) {
        info <- describe(where$target, "%F/%.9Y")
        if (info[1] == "directory") return(list(kind = "directory", size = number(0), sha256 = "", mtime_ns = nanoseconds(info[2])))
      }
      info <- regular(where$target)
      list(size = info$size, sha256 = digest::digest(file = where$target, algo = "sha256"), mtime_ns = info$mtime_ns)
    },
    read_chunk = function() {
      where <- locate()
      info <- regular(where$target)
      con <- attempt(file(where$target, "rb"))
      data <- tryCatch({ seek(con, args$offset); readBin(con, "raw", args$length) }, finally = close(con))
      list(offset = number(args$offset), data = b64(data), sha256 = digest::digest(data, algo = "sha256", serialize = FALSE), size = info$size, mtime_ns = info$mtime_ns)
    },
    list_dir = function() {
      where <- locate()
      if (!nzchar(rel) && !file.exists(where$target)) return(list(entries = list()))
      if (describe(where$target, "%F")[1] != "directory") refuse("not_a_directory", paste0(label, ": Not a directory"))
      con <- pipe(paste("LC_ALL=C find", shQuote(paste0(where$target, "/")), "-mindepth 1 -maxdepth 1 -printf '%y/%s/%P\\0' 2>/dev/null"), "rb")
      bytes <- raw()
      tryCatch(repeat { piece <- readBin(con, "raw", 1048576); if (!length(piece)) break; bytes <- c(bytes, piece) }, finally = close(con))
      ends <- which(bytes == as.raw(0))
      starts <- c(1, ends[-length(ends)] + 1)
      list(entries = if (length(ends)) unname(Map(function(from, to) entry(bytes[from:(to - 1)]), starts, ends)) else list())
    },
    delete = function() {
      where <- locate(follow = FALSE)
      kind <- describe(where$target, "%F", follow = FALSE)[1]
      if (kind == "directory" && !args$recursive) refuse("is_directory", paste(label, "is a directory; delete it recursively"))
      kind <- if (kind == "directory") "directory" else if (kind == "symbolic link") "symlink" else if (startsWith(kind, "regular")) "file" else "other"
      run("rm", c(if (kind == "directory") "-rf" else "-f", "--", where$target))
      list(kind = kind)
    })
  reply <- tryCatch(c(list(ok = TRUE), operations[[op]]()), jupyter_interp_refusal = function(e) list(ok = FALSE, error = e$kind, message = conditionMessage(e)))
  IRdisplay::publish_mimebundle(setNames(list(json(reply)), mime))
  invisible(NULL)
})
"""  # noqa: E501


def _r_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"{value}"
    return f'"{value}"'  # only base64 and hex digests reach here


def _encoded(text: str) -> str:
    return f'text("{base64.b64encode(text.encode()).decode("ascii")}")'


@attrs.frozen(kw_only=True)
class RFileSnippets(FileSnippets):
    """Snippets for IRkernel; the kernel's machine needs GNU coreutils and findutils."""

    def render(self, operation: FileOperation, arguments: Mapping[str, str | int | bool]) -> str:
        path = str(arguments["path"])
        label = repr(path) if path else "the file root"
        transfer_id = arguments.get("transfer_id")
        temp = temp_file_name(path, str(transfer_id)) if transfer_id is not None else ""
        extra = ", ".join(
            f"{name} = {_r_value(value)}" for name, value in arguments.items() if name != "path"
        )
        header = (
            f'local({{\n  mime <- "{FILE_MIME_TYPE}"\n  op <- "{operation.value}"\n'
            f"  args <- list({extra})\n"
        )
        strings = (
            f"  root <- {_encoded(self.root)}\n  rel <- {_encoded(path)}\n"
            f"  label <- {_encoded(json_string_body(label))}\n  temp <- {_encoded(temp)}\n"
        )
        # 'text' is defined first in the body; the strings are decoded after it.
        first, rest = _BODY.split("\n", 2)[1:]
        return f"{header}{first}\n{strings}{rest}"
