# The rbd tests (label rbd), included from tests/CMakeLists.txt. One throwaway cluster
# (start.sh) serves every rbd test of a ctest run: the rbd_cluster fixture starts it before the
# first and stops it after the last, and each test finds it through VLUNFS_RBD_CEPH_CONF. Run
# alone (bash tests/e2e/test_rbd_X.sh BUILD), an e2e test starts and stops a cluster of its own.
get_property(vlunfs_have_rbd GLOBAL PROPERTY VLUNFS_HAVE_RBD)
if(vlunfs_have_rbd)
  set(rbd_cluster_dir ${CMAKE_BINARY_DIR}/rbd-cluster)
  set(rbd_scripts ${CMAKE_CURRENT_SOURCE_DIR}/rbd-cluster)
  # A cluster left behind by an interrupted run is stopped first.
  add_test(NAME rbd.cluster_start
           COMMAND bash -c "bash '${rbd_scripts}/stop.sh' '${rbd_cluster_dir}' && bash '${rbd_scripts}/start.sh' '${rbd_cluster_dir}'")
  add_test(NAME rbd.cluster_stop COMMAND bash ${rbd_scripts}/stop.sh ${rbd_cluster_dir})
  set_tests_properties(rbd.cluster_start PROPERTIES FIXTURES_SETUP rbd_cluster LABELS "rbd;unit;e2e" TIMEOUT 120)
  set_tests_properties(rbd.cluster_stop PROPERTIES FIXTURES_CLEANUP rbd_cluster LABELS "rbd;unit;e2e" TIMEOUT 60)
  set(rbd_env VLUNFS_RBD_CEPH_CONF=${rbd_cluster_dir}/ceph.conf)

  file(GLOB rbd_unit_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unit/rbd_*.cc)
  if(rbd_unit_sources)
    add_executable(unit_rbd ${rbd_unit_sources})
    # librbd directly too: the tests count what the cluster holds (rbd_diff_iterate2).
    target_link_libraries(unit_rbd PRIVATE vlunfs_store_rbd ${RBD_LIB} ${RADOS_LIB} GTest::gtest GTest::gtest_main)
    # One ctest for the binary (gtest_discover_tests would split the label list): one process,
    # one look at the cluster per test.
    add_test(NAME rbd.unit_rbd COMMAND unit_rbd)
    set_tests_properties(rbd.unit_rbd PROPERTIES LABELS "rbd;unit" FIXTURES_REQUIRED rbd_cluster
                         ENVIRONMENT "${rbd_env}" TIMEOUT 300)
  endif()

  file(GLOB rbd_e2e_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_rbd_*.sh)
  foreach(script ${rbd_e2e_tests})
    get_filename_component(name ${script} NAME_WE)
    set_tests_properties(e2e.${name} PROPERTIES LABELS "e2e;rbd" FIXTURES_REQUIRED rbd_cluster
                         ENVIRONMENT "${rbd_env}")
  endforeach()
else()
  message(STATUS "rbd tests: off (no librbd)")
endif()
