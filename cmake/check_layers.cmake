# Fails the build when a source file includes a project header from a room it may not reach,
# or when core/ reaches for Asio, Beast or a logger. Run with -DROOT=<source dir> -DSTAMP=<file>.
# The rooms, and what each may include (docs/design.md draws them):
#   core                pure: clock, buckets, cache, single-flight, addresses
#   log, config         beside core
#   service             the domain and the repository interface
#   store               the repositories' drivers; limit: bucket tables and the Redis client;
#   auth                credentials: all three beside each other, above service or core
#   http                the wire; app assembles everything
set(allowed_core    core)
set(allowed_log     core log)
set(allowed_config  core config)
set(allowed_service core log service)
set(allowed_store   core log service store)
set(allowed_limit   core log limit)
set(allowed_auth    core log auth)
set(allowed_http    core log config service limit auth http)
set(allowed_app     core log config service store limit auth http app)
set(failures "")
foreach(layer core log config service store limit auth http app)
  file(GLOB_RECURSE files "${ROOT}/src/${layer}/*.cpp" "${ROOT}/src/${layer}/*.hpp"
       "${ROOT}/include/userapi/${layer}/*.hpp")
  foreach(f ${files})
    file(STRINGS "${f}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](userapi/[a-z_]+/|boost/|spdlog/)")
    foreach(line ${includes})
      if(line MATCHES "userapi/([a-z_]+)/")
        list(FIND allowed_${layer} "${CMAKE_MATCH_1}" ok)
        if(ok EQUAL -1)
          string(APPEND failures "\n  ${f}: ${layer} must not include ${line}")
        endif()
      elseif(layer STREQUAL "core")
        string(APPEND failures "\n  ${f}: core has no I/O library: ${line}")
      endif()
    endforeach()
  endforeach()
endforeach()
if(failures)
  message(FATAL_ERROR "layering broken:${failures}")
endif()
file(TOUCH "${STAMP}")
