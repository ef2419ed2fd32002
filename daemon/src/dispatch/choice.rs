//! Instance choice among the candidates of a call: instances known to answer
//! (local ones, remote ones whose endpoint completed a handshake or answered a
//! heartbeat) first, round-robin among them; with none of those, the ones not
//! verified yet, round-robin, so the first call to a fresh instance never
//! waits for a probe; instances known dead never. Pure: knows nothing of the
//! transport beyond its `Liveness`.

use crate::rpc::Liveness;

/// The order in which to try `candidates` (each with its liveness) for the
/// call numbered `turn`: the verified ones from `turn`, then the unverified
/// ones from `turn`; the dead never. Rotating each tier on its own keeps
/// round-robin even among live instances when a dead node sits between them
/// in the list. Allocates nothing: it runs on every call.
pub(super) fn order<T: Copy>(
    candidates: &[(T, Liveness)],
    turn: usize,
) -> impl Iterator<Item = (T, Liveness)> + '_ {
    [Liveness::Verified, Liveness::Unverified]
        .into_iter()
        .flat_map(move |tier| {
            let members = move || candidates.iter().filter(move |(_, l)| *l == tier);
            let n = members().count();
            members()
                .cycle()
                .skip(if n == 0 { 0 } else { turn % n })
                .take(n)
                .copied()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Liveness::{Dead, Unverified, Verified};

    fn names(list: &[(char, Liveness)], turn: usize) -> Vec<char> {
        order(list, turn).map(|(name, _)| name).collect()
    }

    #[test]
    fn verified_first_then_unverified_never_dead() {
        let list = [
            ('a', Unverified),
            ('b', Verified),
            ('c', Dead),
            ('d', Verified),
        ];
        assert_eq!(names(&list, 0), ['b', 'd', 'a']);
        assert_eq!(names(&list, 1), ['d', 'b', 'a']);
        assert_eq!(names(&[('x', Dead)], 3), Vec::<char>::new());
    }

    #[test]
    fn round_robin_stays_even_beside_a_node_never_verified() {
        let list = [('a', Verified), ('z', Unverified), ('b', Verified)];
        let firsts: Vec<char> = (0..6).map(|turn| names(&list, turn)[0]).collect();
        assert_eq!(firsts, ['a', 'b', 'a', 'b', 'a', 'b']);
    }

    #[test]
    fn with_none_verified_the_unverified_are_called_at_once() {
        let list = [('a', Unverified), ('b', Unverified), ('c', Dead)];
        let firsts: Vec<char> = (0..4).map(|turn| names(&list, turn)[0]).collect();
        assert_eq!(firsts, ['a', 'b', 'a', 'b']);
    }
}
