# Writes userapi(1) from `userapi --help`, so the manual page says what the binary does.
# usage: cmake -DBINARY=build/userapi -DVERSION=0.1.0 -DOUT=build/deb/userapi.1.gz -P manpage.cmake
execute_process(COMMAND ${BINARY} --help OUTPUT_VARIABLE help COMMAND_ERROR_IS_FATAL ANY)
string(TIMESTAMP date "%Y-%m-%d" UTC)

# roff: a backslash, a hyphen and a line starting with '.' or "'" mean something else there.
function(roff_escape var text)
  string(REPLACE "<semicolon>" ";" text "${text}")
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REGEX REPLACE "^([.'])" "\\\\&\\1" text "${text}")
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

set(page ".TH USERAPI 1 \"${date}\" \"userapi ${VERSION}\" \"User Commands\"
.SH NAME
userapi \\- HTTP/JSON server for user records
.SH SYNOPSIS
.B userapi
[\\fB\\-\\-config\\fR \\fIFILE\\fR] [\\fIoptions\\fR]
.SH DESCRIPTION
")
# Semicolons would split CMake's list: held as a placeholder until the line is written.
string(REPLACE ";" "<semicolon>" help "${help}")
string(REPLACE "\n" ";" lines "${help}")
set(in_options OFF)
foreach(line IN LISTS lines)
  if(line MATCHES "^usage:" OR line STREQUAL "")
    continue()
  elseif(line MATCHES "^  (--[^ ]+( [A-Z]+)?) +(.*)$")
    if(NOT in_options)
      string(APPEND page ".SH OPTIONS\n")
      set(in_options ON)
    endif()
    roff_escape(opt "${CMAKE_MATCH_1}")
    roff_escape(what "${CMAKE_MATCH_3}")
    string(APPEND page ".TP\n.B ${opt}\n${what}\n")
  else()
    string(STRIP "${line}" line)
    roff_escape(line "${line}")
    string(APPEND page "${line}\n")
  endif()
endforeach()
string(APPEND page ".SH FILES
.TP
.I /etc/userapi/userapi.json
the configuration the service reads (every key and its default)
.TP
.I /var/lib/userapi/userapi.db
the SQLite store, owned by the userapi user
.TP
.I /etc/userapi/userapi.env
optional; USERAPI_ADMIN_TOKEN=..., read by the systemd unit
.SH SEE ALSO
.BR systemctl (1),
/usr/share/doc/userapi/
")
get_filename_component(dir ${OUT} DIRECTORY)
file(WRITE ${dir}/userapi.1 "${page}")
execute_process(COMMAND gzip -9nc ${dir}/userapi.1 OUTPUT_FILE ${OUT} COMMAND_ERROR_IS_FATAL ANY)
