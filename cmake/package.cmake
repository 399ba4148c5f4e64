# The Debian package: `cpack -G DEB` in the build folder (scripts/package builds Release first).
#
# The package's layout is Debian's whatever prefix this tree was configured with, so the tree
# scripts/test builds packages as it is: its files are an install component of their own,
# `deb`, which a plain `cmake --install` leaves out (EXCLUDE_FROM_ALL) and CPack installs alone.
#   /usr/bin/userapi                      the binary, stripped
#   /etc/userapi/userapi.json             config/userapi.json with db.path in /var/lib/userapi (a conffile)
#   /lib/systemd/system/userapi.service   deploy/systemd/userapi.service for /usr and /etc, run as `userapi`
#   /usr/share/userapi/nginx/userapi.conf the nginx example
#   /usr/share/doc/userapi/{copyright,changelog.gz}, /usr/share/man/man1/userapi.1.gz (from --help)
# cmake/debian/postinst creates the `userapi` system user and /var/lib/userapi; postrm removes
# both on purge only.

# A source tree without LICENSE (the Dockerfile's build stage copies only what the binary
# needs) builds no package: its copyright file is made from LICENSE.
if(NOT EXISTS ${PROJECT_SOURCE_DIR}/LICENSE)
  message(STATUS "No LICENSE in the source tree: no Debian package")
  return()
endif()

set(USERAPI_PACKAGE_MAINTAINER "The userapi authors <userapi@example.org>"
    CACHE STRING "The Debian package's Maintainer field")
set(deb_dir ${PROJECT_BINARY_DIR}/deb)
set(deb_src ${PROJECT_SOURCE_DIR}/cmake/debian)

# Replaces `from` with `to` in `var`, and fails the configuration when `from` is not there:
# the packaged files must not silently keep a path meant for another layout.
function(userapi_deb_replace var from to)
  string(FIND "${${var}}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "packaging: '${from}' not found; update cmake/package.cmake")
  endif()
  string(REPLACE "${from}" "${to}" out "${${var}}")
  set(${var} "${out}" PARENT_SCOPE)
endfunction()

# The config as packaged: the data in the state folder the unit and postinst prepare, so
# `userapi --config /etc/userapi/userapi.json` run as `userapi` finds it without --data.
file(READ config/userapi.json deb_config)
if(NOT deb_config MATCHES "\"path\" *: *\"data/userapi.db\"")
  message(FATAL_ERROR "packaging: db.path \"data/userapi.db\" not found in config/userapi.json; "
                      "update cmake/package.cmake")
endif()
string(REGEX REPLACE "\"path\"( *): *\"data/userapi.db\"" "\"path\"\\1: \"/var/lib/userapi/userapi.db\"" deb_config
       "${deb_config}")
file(CONFIGURE OUTPUT ${deb_dir}/userapi.json CONTENT "${deb_config}" @ONLY)

# The unit as packaged: Debian's paths, and the static `userapi` user that owns
# /var/lib/userapi across restarts instead of a dynamic one (whose state folder systemd would
# move to /var/lib/private).
file(READ deploy/systemd/userapi.service deb_unit)
userapi_deb_replace(deb_unit "/usr/local/bin/" "/usr/bin/")
userapi_deb_replace(deb_unit "/usr/local/etc/" "/etc/")
userapi_deb_replace(deb_unit "DynamicUser=yes" "User=userapi\nGroup=userapi")
userapi_deb_replace(deb_unit "\nAfter=" "\nDocumentation=man:userapi(1)\nAfter=")
string(REPLACE "owned by the service's dynamic user" "owned by the userapi user (the package's postinst)"
       deb_unit "${deb_unit}")
string(REPLACE "`cmake --install` puts this file in\n# <prefix>/lib/systemd/system with the paths below rewritten for the install prefix."
       "The Debian package installs this file\n# as /lib/systemd/system/userapi.service." deb_unit "${deb_unit}")
file(CONFIGURE OUTPUT ${deb_dir}/userapi.service CONTENT "${deb_unit}" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS config/userapi.json ${deb_src}/changelog.in
             ${deb_src}/copyright.in LICENSE)

# copyright in Debian's machine-readable format, from LICENSE (MIT is "Expat" there).
file(STRINGS LICENSE license_lines)
set(USERAPI_LICENSE_BODY "")
foreach(line IN LISTS license_lines)
  if(line MATCHES "^Copyright \\(c\\) (.*)$")
    set(USERAPI_COPYRIGHT "${CMAKE_MATCH_1}")
  elseif(NOT line STREQUAL "MIT License" AND (USERAPI_LICENSE_BODY OR NOT line STREQUAL ""))
    if(line STREQUAL "")
      set(line ".")
    endif()
    string(APPEND USERAPI_LICENSE_BODY " ${line}\n")
  endif()
endforeach()
if(NOT USERAPI_COPYRIGHT)
  message(FATAL_ERROR "packaging: no 'Copyright (c) ...' line in LICENSE")
endif()
string(STRIP "${USERAPI_LICENSE_BODY}" USERAPI_LICENSE_BODY)
set(USERAPI_LICENSE_BODY " ${USERAPI_LICENSE_BODY}")
configure_file(${deb_src}/copyright.in ${deb_dir}/copyright @ONLY)

# A native package's changelog (Debian requires one), dated today or SOURCE_DATE_EPOCH.
string(TIMESTAMP USERAPI_PACKAGE_DATE "%a, %d %b %Y 00:00:00 +0000" UTC)
configure_file(${deb_src}/changelog.in ${deb_dir}/changelog @ONLY)
execute_process(COMMAND gzip -9nc ${deb_dir}/changelog OUTPUT_FILE ${deb_dir}/changelog.gz COMMAND_ERROR_IS_FATAL ANY)

# userapi(1) from `userapi --help`, rewritten whenever the binary changes.
add_custom_command(OUTPUT ${deb_dir}/userapi.1.gz
  COMMAND ${CMAKE_COMMAND} -DBINARY=$<TARGET_FILE:userapi> -DVERSION=${PROJECT_VERSION} -DOUT=${deb_dir}/userapi.1.gz
    -P ${deb_src}/manpage.cmake
  DEPENDS userapi ${deb_src}/manpage.cmake
  COMMENT "Writing userapi(1) from userapi --help")
add_custom_target(userapi_manpage ALL DEPENDS ${deb_dir}/userapi.1.gz)

set(deb_install COMPONENT deb EXCLUDE_FROM_ALL)
install(TARGETS userapi RUNTIME DESTINATION usr/bin ${deb_install})
install(FILES ${deb_dir}/userapi.json DESTINATION etc/userapi ${deb_install})
install(FILES ${deb_dir}/userapi.service DESTINATION lib/systemd/system ${deb_install})
install(FILES deploy/nginx/userapi.conf DESTINATION usr/share/userapi/nginx ${deb_install})
install(FILES ${deb_dir}/copyright ${deb_dir}/changelog.gz DESTINATION usr/share/doc/userapi ${deb_install})
install(FILES ${deb_dir}/userapi.1.gz DESTINATION usr/share/man/man1 ${deb_install})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME userapi)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The userapi authors")
set(CPACK_PACKAGE_CONTACT "${USERAPI_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${USERAPI_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "HTTP/JSON server for user records")
set(CPACK_PACKAGE_DESCRIPTION
    "userapi serves user records over HTTP/1.1 and JSON, with an LRU cache in
front of SQLite or PostgreSQL, coalescing of concurrent misses, token-bucket
rate limiting (per instance or shared in Redis) and Prometheus metrics.

The package runs it as a hardened systemd service under the userapi system
user, with its data in /var/lib/userapi and its configuration in
/etc/userapi/userapi.json.")
set(CPACK_DEBIAN_PACKAGE_SECTION web)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The libraries' packages come from the binary (dpkg-shlibdeps); postinst needs adduser.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${deb_src}/conffiles ${deb_src}/postinst ${deb_src}/prerm ${deb_src}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
# Only the `deb` component, installed at the root of the package.
set(CPACK_PACKAGING_INSTALL_PREFIX "/")
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};deb;/")
include(CPack)
