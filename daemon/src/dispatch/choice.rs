//! Instance choice among the candidates of a call: instances known to answer
//! (local ones, remote ones whose endpoint completed a handshake or answered a
//! heartbeat) first, round-robin among them; with none of those, the ones not
//! verified yet, round-robin, so the first call to a fresh instance never
//! waits for a probe; instances known dead never. Pure: knows nothing of the
//! transport beyond its `Liveness`.

use crate::rpc::Liveness;

/// The order in which to try `candidates` (each with its liveness) for the
/// call numbered `turn`: the verified ones from `turn`, then the unverified
/// ones from `turn`. Rotating each tier on its own keeps round-robin even
/// among live instances when a dead node sits between them in the list.
pub(super) fn order<T: Copy>(candidates: &[(T, Liveness)], turn: usize) -> Vec<T> {
    let mut tried = Vec::with_capacity(candidates.len());
    for tier in [Liveness::Verified, Liveness::Unverified] {
        let members: Vec<T> = candidates
            .iter()
            .filter(|(_, liveness)| *liveness == tier)
            .map(|(candidate, _)| *candidate)
            .collect();
        let n = members.len();
        tried.extend((0..n).map(|k| members[(turn + k) % n]));
    }
    tried
}

#[cfg(test)]
mod tests {
    use super::*;
    use Liveness::{Dead, Unverified, Verified};

    #[test]
    fn verified_first_then_unverified_never_dead() {
        let list = [
            ('a', Unverified),
            ('b', Verified),
            ('c', Dead),
            ('d', Verified),
        ];
        assert_eq!(order(&list, 0), ['b', 'd', 'a']);
        assert_eq!(order(&list, 1), ['d', 'b', 'a']);
        assert_eq!(order(&[('x', Dead)], 3), Vec::<char>::new());
    }

    #[test]
    fn round_robin_stays_even_beside_a_node_never_verified() {
        let list = [('a', Verified), ('z', Unverified), ('b', Verified)];
        let firsts: Vec<char> = (0..6).map(|turn| order(&list, turn)[0]).collect();
        assert_eq!(firsts, ['a', 'b', 'a', 'b', 'a', 'b']);
    }

    #[test]
    fn with_none_verified_the_unverified_are_called_at_once() {
        let list = [('a', Unverified), ('b', Unverified), ('c', Dead)];
        let firsts: Vec<char> = (0..4).map(|turn| order(&list, turn)[0]).collect();
        assert_eq!(firsts, ['a', 'b', 'a', 'b']);
    }
}
