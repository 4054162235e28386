//! Tasks imported from a trace, kept compactly: a trace of 10⁶ tasks is
//! 10⁶ of these (72 bytes each, names in one shared buffer), sorted
//! by submission time, not the file's text.

use std::collections::BTreeMap;

use super::template::Draw;
use crate::api::pod::ANNOTATION_EXIT_CODE;
use crate::sim::{SimDuration, SimTime};

/// One task: when it is submitted, what it asks for, how it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    pub at: SimTime,
    /// How long it runs once started; `None`: until the end of the run.
    pub run_for: Option<SimDuration>,
    /// Never started in the trace: deleted then, wherever it got to.
    pub delete_at: Option<SimTime>,
    pub cpu_milli: u32,
    pub memory_mib: u32,
    pub gpus: u32,
    /// The share of one GPU the task asked for, in thousandths (GPU
    /// sharing); kept as an annotation, as whole GPUs are what the
    /// `nvidia.com/gpu` extended resource can count.
    pub gpu_milli: u32,
    /// Index into [`TaskTable::gpu_models`]; 0 is "any model".
    pub gpu_model: u16,
    /// Index into [`TaskTable::classes`].
    pub class: u16,
    pub failed: bool,
    name_end: u32,
}

/// Every task of one import, in submission order (ties in file order).
#[derive(Debug, Default)]
pub struct TaskTable {
    tasks: Vec<Task>,
    names: String,
    /// Accepted GPU models per task kind (`V100M16|V100M32`), `[0]` empty.
    gpu_models: Interned<Vec<String>>,
    /// The trace's QoS classes (`LS`, `BE`, …), kept as a label; `[0]` is
    /// "none given", which labels nothing.
    classes: Interned<String>,
    /// The label key for a task's QoS class.
    pub class_label: String,
    /// Every name so far, to refuse a second task of the same name (its
    /// create would be refused and its deletion would hit the first).
    seen: std::collections::BTreeSet<Box<str>>,
}

/// Values numbered in order of first appearance, found through an index.
#[derive(Debug, Default)]
struct Interned<T: Ord + Clone> {
    list: Vec<T>,
    index: BTreeMap<T, u16>,
}

impl<T: Ord + Clone> Interned<T> {
    fn with_empty(empty: T) -> Self {
        let mut i = Interned {
            list: Vec::new(),
            index: BTreeMap::new(),
        };
        let _ = i.get(empty);
        i
    }

    /// `v`'s number; `None` past 65,536 distinct values.
    fn get(&mut self, v: T) -> Option<u16> {
        if let Some(&i) = self.index.get(&v) {
            return Some(i);
        }
        let i = u16::try_from(self.list.len()).ok()?;
        self.index.insert(v.clone(), i);
        self.list.push(v);
        Some(i)
    }
}

/// Why a task could not be added.
pub const TOO_MANY_KINDS: &str = "more than 65,536 distinct values in this column";

impl TaskTable {
    pub fn new(class_label: &str) -> Self {
        TaskTable {
            gpu_models: Interned::with_empty(Vec::new()),
            classes: Interned::with_empty(String::new()),
            class_label: class_label.into(),
            ..Default::default()
        }
    }

    /// Adds a task; `name` is kept in the shared buffer. An error names
    /// what is wrong with it (a name seen before, a table too large).
    pub fn push(&mut self, mut task: Task, name: &str) -> Result<(), String> {
        if !self.seen.insert(name.into()) {
            return Err(format!("a second task is named `{name}`"));
        }
        self.names.push_str(name);
        task.name_end = u32::try_from(self.names.len())
            .map_err(|_| "the tasks' names pass 4 GiB".to_string())?;
        self.tasks.push(task);
        Ok(())
    }

    /// The index of a GPU model list, adding it if new.
    pub fn gpu_model_index(&mut self, models: Vec<String>) -> Result<u16, &'static str> {
        self.gpu_models.get(models).ok_or(TOO_MANY_KINDS)
    }

    /// The index of a class (`""` is none).
    pub fn class_index(&mut self, class: &str) -> Result<u16, &'static str> {
        self.classes.get(class.to_string()).ok_or(TOO_MANY_KINDS)
    }

    /// Sorts by submission time; a stable sort, so ties keep file order.
    pub fn finish(&mut self) {
        self.tasks.shrink_to_fit();
        self.names.shrink_to_fit();
        // Traces are written in submission order, nearly always.
        if self.tasks.is_sorted_by_key(|t| t.at) {
            return;
        }
        // The names buffer is indexed by each task's end offset, and a
        // task's start is the previous task's end in *file* order; keep
        // both by recording starts before sorting.
        let mut starts = Vec::with_capacity(self.tasks.len());
        let mut prev = 0;
        for t in &self.tasks {
            starts.push(prev);
            prev = t.name_end;
        }
        let mut order: Vec<usize> = (0..self.tasks.len()).collect();
        order.sort_by_key(|&i| self.tasks[i].at);
        let mut names = String::with_capacity(self.names.len());
        let mut tasks = Vec::with_capacity(self.tasks.len());
        for i in order {
            let mut t = self.tasks[i];
            names.push_str(&self.names[starts[i] as usize..t.name_end as usize]);
            t.name_end = names.len() as u32;
            tasks.push(t);
        }
        self.tasks = tasks;
        self.names = names;
        self.seen = Default::default();
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Task> {
        self.tasks.get(i)
    }

    pub fn name(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.tasks[i - 1].name_end
        };
        &self.names[start as usize..self.tasks[i].name_end as usize]
    }

    /// The values task `i` writes into its pod.
    pub fn draw(&self, i: usize) -> Draw {
        let t = &self.tasks[i];
        let mut d = Draw::default();
        d.requests.insert("cpu".into(), format!("{}m", t.cpu_milli));
        d.requests
            .insert("memory".into(), format!("{}Mi", t.memory_mib));
        if t.gpus > 0 {
            let n = t.gpus.to_string();
            d.requests.insert(super::GPU.into(), n.clone());
            d.limits.insert(super::GPU.into(), n);
            d.annotations
                .insert("kubesim.io/gpu-milli".into(), t.gpu_milli.to_string());
            let models = &self.gpu_models.list[t.gpu_model as usize];
            if !models.is_empty() {
                d.node_in = Some((super::GPU_PRODUCT_LABEL.into(), models.clone()));
            }
        }
        d.run_for = t.run_for;
        if t.failed {
            d.annotations
                .insert(ANNOTATION_EXIT_CODE.into(), "1".into());
        }
        match self.classes.list.get(t.class as usize) {
            Some(c) if !c.is_empty() => {
                d.labels.insert(self.class_label.clone(), c.clone());
            }
            _ => {}
        }
        d
    }
}

impl Task {
    /// A task submitted at `at` asking for CPU and memory only.
    pub fn new(at: SimTime, cpu_milli: u32, memory_mib: u32) -> Self {
        Task {
            at,
            run_for: None,
            delete_at: None,
            cpu_milli,
            memory_mib,
            gpus: 0,
            gpu_milli: 0,
            gpu_model: 0,
            class: 0,
            failed: false,
            name_end: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_keeps_each_task_its_name_and_ties_in_file_order() {
        let mut t = TaskTable::new("qos");
        t.push(Task::new(SimTime(30), 1, 1), "late").unwrap();
        t.push(Task::new(SimTime(10), 2, 2), "first").unwrap();
        t.push(Task::new(SimTime(10), 3, 3), "second").unwrap();
        assert!(t.push(Task::new(SimTime(40), 1, 1), "late").is_err());
        t.finish();
        let names: Vec<&str> = (0..t.len()).map(|i| t.name(i)).collect();
        assert_eq!(names, ["first", "second", "late"]);
        assert_eq!(t.get(2).unwrap().cpu_milli, 1);
    }

    #[test]
    fn a_task_is_small() {
        // 72 bytes: a million tasks are 72 MB, not the 77 MB of their text
        // plus the parsed strings.
        assert!(
            std::mem::size_of::<Task>() <= 72,
            "{}",
            std::mem::size_of::<Task>()
        );
    }
}
