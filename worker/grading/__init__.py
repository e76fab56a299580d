"""Grading's checks on hostile submissions, apart from the job kinds that use them (worker/kinds/grade.py,
`hw3-submit grade ...`). Not under worker/kinds, so the registry of kinds does not scan it.

  submissions.py   the client's side: which files, refused (links, not regular files, too big) or copied and
                   hashed; run names; the exceptions a run fails with
  limits.py        the time limit on one file (SIGALRM in the pool process)
  keras_files.py   a Keras HDF5 file: the allow-list, its config and weights read with h5py, the checked network
  npz_files.py     an .npz of the numpy engine's layout: headers checked, then read with allow_pickle=False

Nothing here imports TensorFlow or Keras at module level, only inside the functions that build and evaluate
the checked network: listing, copying and rejecting a file never load them.
"""
