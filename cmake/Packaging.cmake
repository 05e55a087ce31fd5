# Install layout and the Debian package (CPack).
#   cmake --install build --prefix /usr     binary, SPANK plugin, man page, docs
#   cd build && cpack -G DEB                 imgcast_<version>_<arch>.deb
include(GNUInstallDirs)

# imgcast(1), generated from the binary's own --help (help2man; Debian package help2man).
find_program(HELP2MAN help2man)
if(HELP2MAN)
  add_custom_command(
    OUTPUT ${PROJECT_BINARY_DIR}/imgcast.1
    COMMAND ${PROJECT_SOURCE_DIR}/docs/man/make-man.sh $<TARGET_FILE:imgcast>
            ${PROJECT_BINARY_DIR}/imgcast.1
    DEPENDS imgcast ${PROJECT_SOURCE_DIR}/docs/man/make-man.sh
    COMMENT "Generating the imgcast(1) man page")
  add_custom_target(imgcast_man ALL DEPENDS ${PROJECT_BINARY_DIR}/imgcast.1)
  install(FILES ${PROJECT_BINARY_DIR}/imgcast.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "imgcast: help2man not found: no man page (apt-get install help2man)")
endif()

install(FILES README.md docs/usage.md docs/launchers.md docs/architecture.md docs/protocol.md docs/perf.md
              docs/rdma.md docs/imgcast.conf.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME imgcast)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "imgcast developers <imgcast@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "stage a container image onto every node of an HPC job, reading it once")
set(CPACK_PACKAGE_DESCRIPTION
    "imgcast reads an image (SIF, squashfs, any file) once from the parallel file system and
relays it node to node over a pipelined tree (TCP, UCX or verbs), verifying every chunk and
every copy. It runs from job scripts, as a once-per-node launcher hook (srun, mpirun) and as a
Slurm SPANK plugin (srun --imgcast=SRC:DST).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Depends: computed from the linked libraries by dpkg-shlibdeps (libucx0, libibverbs1, libssl3,
# libspdlog1.1, ...), so it follows what this build actually links.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)  # RelWithDebInfo builds carry debug info the package does not need
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssh-client, squashfs-tools")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "slurm-client, openmpi-bin")
include(CPack)
