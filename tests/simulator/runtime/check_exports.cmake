# Fails unless
#  - every symbol the installed torch's libraries import from
#    libcudart.so.13, libcublas.so.13 or libcublasLt.so.13 (nm -D
#    --undefined-only: name@version) is exported by the stand-in of that
#    soname in that version node (name@@version), since torch loads its
#    libraries with RTLD_NOW and one missing name fails `import torch`;
#  - every function the real runtime exports (REAL_CUDART) is exported by
#    the stand-in runtime, as an implementation or an unsupported stub.
# Arguments: NM, PYTHON, REAL_CUDART, CUDART, CUBLAS, CUBLASLT.
function(read_symbols library mode pattern out)
  execute_process(COMMAND ${NM} -D ${mode} ${library} OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm ${mode} failed on ${library}")
  endif()
  string(REGEX MATCHALL "${pattern}" found "${text}")
  set(${out} ${found} PARENT_SCOPE)
endfunction()

execute_process(
  COMMAND ${PYTHON} -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"
  OUTPUT_VARIABLE torch_lib OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT IS_DIRECTORY "${torch_lib}")
  message(FATAL_ERROR "torch is not importable with ${PYTHON}: the imports the stand-ins must satisfy cannot be read")
endif()

set(versions "libcudart\\.so\\.13|libcublas\\.so\\.13|libcublasLt\\.so\\.13")
file(GLOB torch_libraries "${torch_lib}/*.so*")
set(imported "")
foreach(library IN LISTS torch_libraries)
  read_symbols(${library} --undefined-only "[A-Za-z_][A-Za-z0-9_]*@(${versions})" names)
  list(APPEND imported ${names})
endforeach()
list(REMOVE_DUPLICATES imported)
list(LENGTH imported imported_count)
if(imported_count LESS 200)
  message(FATAL_ERROR "only ${imported_count} CUDA runtime/cuBLAS imports found in ${torch_lib}; expected torch's full list")
endif()

set(exported "")
foreach(library IN ITEMS ${CUDART} ${CUBLAS} ${CUBLASLT})
  read_symbols(${library} --defined-only "[TW] [A-Za-z_][A-Za-z0-9_]*@@(${versions})" names)
  foreach(name IN LISTS names)
    string(REGEX REPLACE "^[TW] " "" name "${name}")
    string(REPLACE "@@" "@" name "${name}")
    list(APPEND exported ${name})
  endforeach()
endforeach()

include(${CMAKE_CURRENT_LIST_DIR}/../require_exported.cmake)
require_exported(imported exported "torch imports (with their versions, by the stand-ins)")

if(NOT EXISTS "${REAL_CUDART}")
  message(FATAL_ERROR "the CUDA toolkit's runtime '${REAL_CUDART}' is missing: its export list cannot be checked")
endif()
read_symbols(${REAL_CUDART} --defined-only "T [A-Za-z_][A-Za-z0-9_]*@@libcudart\\.so\\.13" real)
list(LENGTH real real_count)
if(real_count LESS 400)
  message(FATAL_ERROR "only ${real_count} functions read from ${REAL_CUDART}; expected the full runtime API")
endif()
set(real_names "")
foreach(symbol IN LISTS real)
  string(REGEX REPLACE "^T " "" name "${symbol}")
  string(REPLACE "@@" "@" name "${name}")
  list(APPEND real_names ${name})
endforeach()
require_exported(real_names exported "functions of the real runtime")
