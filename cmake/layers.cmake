# One build target per layer, and include roots that make "layers call downward only" a build rule.
#
# A layer's headers are reachable only through an include root of its own, generated in the build
# tree (symbolic links into the source tree, so nothing is copied):
#   build/layer-include/LAYER/LAYER             -> src/LAYER               #include "LAYER/x.h"
#   build/layer-include/LAYER/vlunfs/x.h        -> include/vlunfs/x.h      #include "vlunfs/x.h"
# A layer's target adds its root as a PUBLIC include directory and links the layers below it
# PUBLIC, so it sees its own headers and those of the layers below, and a layer above sees them
# too. A header of a layer above is in no root the target sees: an upward #include does not
# compile (tests/layering/ proves it). Neither src/ nor include/ is an include directory.

# vlunfs_layer_root(LAYER [SOURCE_DIR dir] [PUBLIC_HEADERS h...]): creates the root of LAYER.
# SOURCE_DIR is reached as "LAYER/..."; PUBLIC_HEADERS are paths under include/vlunfs/.
function(vlunfs_layer_root layer)
  cmake_parse_arguments(arg "" "SOURCE_DIR" "PUBLIC_HEADERS" ${ARGN})
  set(root ${PROJECT_BINARY_DIR}/layer-include/${layer})
  file(REMOVE_RECURSE ${root})  # a header taken off the list leaves the root
  file(MAKE_DIRECTORY ${root})
  if(arg_SOURCE_DIR)
    file(CREATE_LINK ${arg_SOURCE_DIR} ${root}/${layer} SYMBOLIC)
  endif()
  foreach(header ${arg_PUBLIC_HEADERS})
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/include/vlunfs/${header})
      message(FATAL_ERROR "layer ${layer}: no include/vlunfs/${header}")
    endif()
    get_filename_component(dir ${root}/vlunfs/${header} DIRECTORY)
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/vlunfs/${header} ${root}/vlunfs/${header} SYMBOLIC)
  endforeach()
endfunction()

# vlunfs_layer_includes(TARGET LAYER...): the target sees the roots of the named layers.
function(vlunfs_layer_includes target)
  get_target_property(type ${target} TYPE)
  set(scope PUBLIC)
  if(type STREQUAL "INTERFACE_LIBRARY")
    set(scope INTERFACE)
  endif()
  foreach(layer ${ARGN})
    target_include_directories(${target} ${scope} ${PROJECT_BINARY_DIR}/layer-include/${layer})
  endforeach()
endfunction()
