# What `cmake --install` adds beyond the programs (src/*/CMakeLists.txt install those): fsck.vlunfs
# where fsck(8) looks, the man pages, bash completion, the contrib/ examples and the documents;
# and the Debian package: cpack -G DEB (in the build directory).
include(GNUInstallDirs)

# fsck(8), like mount(8), looks in /sbin first whatever the prefix (VLUNFS_MOUNT_HELPER_DIR, top-level
# CMakeLists.txt); a second copy there, so that `fsck -t vlunfs` works with any prefix.
install(TARGETS fsck.vlunfs RUNTIME DESTINATION ${VLUNFS_MOUNT_HELPER_DIR})

# Man pages (mdoc; tests/docs/test_man_pages.sh keeps them in step with --help). The other names
# of mount.vlunfs(8) are .so links, as man-db and mandoc follow them.
install(FILES man/vlunfs.8 man/mkfs.vlunfs.8 man/fsck.vlunfs.8 man/vlunctl.8 man/mount.vlunfs.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/vlunfs.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
foreach(alias mount.fuse.vlunfs umount.fuse.vlunfs)
  file(WRITE ${CMAKE_BINARY_DIR}/man/${alias}.8 ".so man8/mount.vlunfs.8\n")
  install(FILES ${CMAKE_BINARY_DIR}/man/${alias}.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
endforeach()

# bash-completion loads completions/NAME from every XDG data dir (/usr/local/share, /usr/share).
install(FILES completion/vlunctl completion/mkfs.vlunfs
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# Examples: systemd units, the container recipe, fio jobs (bench/fio is what bench/run.sh runs).
install(DIRECTORY contrib/ DESTINATION ${CMAKE_INSTALL_DATADIR}/vlunfs/contrib USE_SOURCE_PERMISSIONS)
install(FILES bench/fio/jobs.fio DESTINATION ${CMAKE_INSTALL_DATADIR}/vlunfs/contrib/fio)
install(FILES README.md docs/format.md docs/control.md docs/design.md docs/reliability.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The Debian package. Its prefix is /usr; the mount helpers keep their absolute directory, so the
# staging install goes through DESTDIR (CPACK_SET_DESTDIR) and the package holds them there.
# cpack builds the `preinstall` target first, which by default means everything (tests and
# benchmarks too); the package needs only what is installed, and scripts/build.sh builds that.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vlunfs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "FUSE filesystem in which every file is a virtual LUN of CAPI flash")
set(CPACK_PACKAGE_DESCRIPTION "vlunfs serves a CAPI flash device, or a simulated one over an image \
file or block device, as a filesystem in which every regular file is a virtual LUN: truncate \
provisions it, rm releases its chunks. With mkfs.vlunfs, fsck.vlunfs, vlunctl and the \
mount(8)/umount(8) helpers.")
set(CPACK_PACKAGE_CONTACT "vlunfs maintainers <vlunfs@localhost>")
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)  # the debug info of RelWithDebInfo stays in the build tree
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Libraries from dpkg-shlibdeps (dpkg-dev); the programs the scripts run by name besides.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3, util-linux, mount")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion, e2fsprogs, fio")
include(CPack)
