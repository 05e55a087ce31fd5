/*
 * mpi_bcast_file: the comparator for mpiFileUtils' dbcast, which is not packaged in Debian. It
 * does what dbcast does: rank 0 reads the file in chunks and MPI_Bcast()s each chunk to every
 * rank; every rank writes each chunk to its own node-local copy. One rank per node.
 *
 *   mpirun --map-by ppr:1:node mpi_bcast_file SRC DST [CHUNK_MIB (1)]
 *
 * CHUNK_MIB 1 is dbcast's own; with Open MPI's pipeline algorithm (perf/comparators/mpi_bcast.sh
 * pipeline) 64 MiB chunks are its best: each MPI_Bcast drains the chain, so few, large chunks
 * keep every link busy. Up to 2047 MiB (one int count).
 *
 * Rank 0 prints "seconds S", from a barrier before the first read to a barrier after every rank
 * has written and closed its copy; the caller verifies every copy.
 * Errors abort the whole job (MPI_Abort) with a one-line reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fail(const char* what, const char* path) {
  fprintf(stderr, "mpi_bcast_file: %s %s: %s\n", what, path, strerror(errno));
  MPI_Abort(MPI_COMM_WORLD, 2);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc < 3) {
    if (rank == 0)
      fprintf(stderr, "usage: mpi_bcast_file SRC DST [CHUNK_MIB]\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const char* source = argv[1];
  const char* destination = argv[2];
  const long chunk = (argc > 3 ? atol(argv[3]) : 1) << 20;
  char* buffer = malloc((size_t)chunk);
  if (chunk <= 0 || chunk > 2047L << 20 || buffer == NULL) {
    fprintf(stderr, "mpi_bcast_file: bad chunk size\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  long long size = 0;
  int in = -1;
  if (rank == 0) {
    in = open(source, O_RDONLY);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0)
      fail("cannot open", source);
    posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
    size = st.st_size;
  }
  MPI_Bcast(&size, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  const int out = open(destination, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0)
    fail("cannot create", destination);
  for (long long offset = 0; offset < size; offset += chunk) {
    const int length = (int)(size - offset < chunk ? size - offset : chunk);
    if (rank == 0 && pread(in, buffer, (size_t)length, offset) != length)
      fail("cannot read", source);
    MPI_Bcast(buffer, length, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (pwrite(out, buffer, (size_t)length, offset) != length)
      fail("cannot write", destination);
  }
  if (close(out) != 0)
    fail("cannot close", destination);
  MPI_Barrier(MPI_COMM_WORLD);
  const double seconds = MPI_Wtime() - start;
  if (rank == 0)
    printf("seconds %.6f\n", seconds);
  free(buffer);
  MPI_Finalize();
  return 0;
}
