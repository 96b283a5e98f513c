# Shared by the stand-ins' export checks (cmake -P scripts): fail, naming
# them, unless every name in WANTED is in HAVE. WHAT says whose names they
# are in the message ("driver functions", "torch's imports", ...).
function(require_exported wanted have what)
  set(missing "")
  foreach(name IN LISTS ${wanted})
    list(FIND ${have} ${name} index)
    if(index EQUAL -1)
      list(APPEND missing ${name})
    endif()
  endforeach()
  list(LENGTH ${wanted} wanted_count)
  if(missing)
    list(LENGTH missing missing_count)
    message(FATAL_ERROR "${missing_count} of ${wanted_count} ${what} are not exported: ${missing}")
  endif()
  message(STATUS "all ${wanted_count} ${what} are exported")
endfunction()
