# Random Go regexp patterns for main.go: `python3 random_patterns.py 7 | go run main.go` and
# `python3 random_patterns.py 11 exotic | go run main.go`; random.json holds 400 results of each, sampled with seed 3.
import json,random,sys
random.seed(int(sys.argv[1]))
atoms=['a','b','.','\\d','\\w','\\s','\\b','\\B','\\D','\\W','\\S','[a-c]','[^a]','[[:alpha:]]','[\\d-]','\\pL','\\p{Greek}','\\Qa.\\E','\\.','\\-','\\<','é','α','1','_','-','&','~','#',' ','^','$','\\A','\\z','(?i)','(?s)','(?m)','(?U)','[&&]','[~~a]','[a-]','[]a]','\\x41','\\101','\\0','{','}',']','[[]','\\{']
if len(sys.argv) > 2:
    atoms=[r'[\w-]',r'[^\s]',r'[\D]','[[:^space:]]',r'[\x00-\x{7F}]',r'\pN',r'\P{Greek}',r'[\p{^L}]',r'\Q\\E',r'\Q(a|b)',r'\x{1F600}',r'\12',r'\7',r'\8','(?ii)','(?i-i)','(?-s)','(?sU-im)',r'\C',r'\Z','(?=a)','(?#c)','a{1001}']+atoms
ops=['','','','*','+','?','*?','+?','??','{2}','{1,2}','{0}','{,3}','{2,}']
def pat(depth=0):
    s=''
    for _ in range(random.randint(1,4)):
        r=random.random()
        if r<0.15 and depth<2:
            g=random.choice(['(','(?:','(?i:','(?P<n>'])
            s+=g+pat(depth+1)+(('|'+pat(depth+1)) if random.random()<0.3 else '')+')'
        else:
            s+=random.choice(atoms)
        s+=random.choice(ops)
    return s
inputs=['','a','A','ab','a.b','aaa','1','12','é','α','ΑΒ','a-b','\n','a\nb','<a>','a b','_x_','&','~','#','{','}',']','[','K','\u212a','x1y','abc123','a.','..','Aa1_-']
cases=[{"pattern":pat(),"inputs":inputs} for _ in range(4000)]
print(json.dumps(cases,ensure_ascii=False))
