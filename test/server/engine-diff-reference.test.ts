import { engineDifferential, REFERENCE_ENGINE } from './engine-diff.case.js';

// node-http against itself must find nothing: the proof that the differential harness is deterministic, so that
// what it finds between two engines is theirs. Its own file, so it runs beside the other engines' comparison.
engineDifferential(REFERENCE_ENGINE);
